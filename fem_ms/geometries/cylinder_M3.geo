// Flow past a cylinder, mesh M3 of 4 (M1 coarsest): channel [-4, 12] x [-4, 4], cylinder of
// diameter 1 at the origin. Element size 0.07 at the cylinder, 0.25 on the outer boundary
// (sizes of the MLMC paper's Table 3). Physical curves: 1 inlet (x = -4), 2 outlet (x = 12),
// 3 walls (y = -4, 4), 4 cylinder; physical surface 1.
h_cyl = 0.07;
h_out = 0.25;
Point(1) = {-4, -4, 0, h_out};
Point(2) = {12, -4, 0, h_out};
Point(3) = {12, 4, 0, h_out};
Point(4) = {-4, 4, 0, h_out};
Point(5) = {0, 0, 0, h_cyl};
Point(6) = {0.5, 0, 0, h_cyl};
Point(7) = {0, 0.5, 0, h_cyl};
Point(8) = {-0.5, 0, 0, h_cyl};
Point(9) = {0, -0.5, 0, h_cyl};
Line(1) = {1, 2};
Line(2) = {2, 3};
Line(3) = {3, 4};
Line(4) = {4, 1};
Circle(5) = {6, 5, 7};
Circle(6) = {7, 5, 8};
Circle(7) = {8, 5, 9};
Circle(8) = {9, 5, 6};
Curve Loop(1) = {1, 2, 3, 4};
Curve Loop(2) = {5, 6, 7, 8};
Plane Surface(1) = {1, 2};
Physical Curve(1) = {4};
Physical Curve(2) = {2};
Physical Curve(3) = {1, 3};
Physical Curve(4) = {5, 6, 7, 8};
Physical Surface(1) = {1};
